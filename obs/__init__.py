"""The `obs` command and the local stack supervisor (`obs up`, `obs down`, `obs status`, `obs fault`)."""
