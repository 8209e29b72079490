"""The server's HTTP side: the status page, Prometheus metrics, and who may see which recording."""
