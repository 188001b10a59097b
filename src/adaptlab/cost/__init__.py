"""The cost model: a dated, sourced price catalog, workloads, total cost of ownership and the advisor."""
