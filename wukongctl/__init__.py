"""``kubectl wukong``, the kubectl plugin for VM owners: status, start/stop/restart, and the offline check."""
