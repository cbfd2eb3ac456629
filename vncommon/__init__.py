"""Code shared by every vnml service: settings, Redis keyspace, streams, XML safety, errors, gRPC bootstrap."""
