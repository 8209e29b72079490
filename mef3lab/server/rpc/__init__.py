"""The gRPC services: mef3lab's own API (`service`), the lab's seed API (`compat`), `auth`.

Services are thin: protobuf in, a call on the engine, protobuf out.
"""
