"""The Wukong reconciler: storage, expansion, status and the KubeVirt VirtualMachine for each Wukong."""
