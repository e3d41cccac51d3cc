"""devcluster: a real local Kubernetes control plane (etcd + kube-apiserver built from pinned upstream
Go modules) for the tests, the benchmarks and the demo, plus a simulated storage/VM backend."""
