"""The gRPC services: mef3lab's own API (`service`), the seed API (`compat`), and who calls (`auth`).

Services are thin: protobuf in, a call on the engine, protobuf out.
"""
