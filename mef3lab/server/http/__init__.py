"""The server's HTTP side: the status page, Prometheus metrics, and who may see which recording.

A second listener beside gRPC, since jupyter-server-proxy and Prometheus speak HTTP.
"""
