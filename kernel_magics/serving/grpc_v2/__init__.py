"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``), next to
the REST API in the same process: ``serve(..., grpc_port=G)``, ``ship serve --grpc-port``,
``SHIP_GRPC_PORT``.

    grpc_predict_v2.proto   the contract (KServe's V2 gRPC messages, the calls served)
    grpc_predict_v2.pb      the same compiled: a FileDescriptorSet, read at import
    protocol.py             its message classes, in a descriptor pool of their own
    codec.py                ModelInferRequest -> validated Inputs, outputs -> response
    server.py               the calls, over the app's Service; grpc.aio on the app's loop

Why a descriptor set and no generated ``*_pb2.py``: generated modules register their
messages in protobuf's default pool, where tritonclient's (and KServe's) own
``inference.*`` messages already live when a client and the runtime share a process (a
test, a notebook): the second registration fails with "duplicate symbol". A pool of our
own holds the same messages under the same names, so the wire format is the same, and
nothing is generated to keep in step with the runtime's protobuf version.

To regenerate grpc_predict_v2.pb after editing the .proto, with grpcio-tools in a
throwaway venv (its protobuf must be 6.x, as the runtime's is; grpcio-tools 1.80 is):

    python -m venv /tmp/gt && /tmp/gt/bin/pip install grpcio-tools==1.80.0 protobuf==6.33.6
    cd kernel_magics/serving/grpc_v2 && /tmp/gt/bin/python -m grpc_tools.protoc -I. \\
        --descriptor_set_out=grpc_predict_v2.pb grpc_predict_v2.proto

tests/serving/test_grpc.py checks the .pb against the .proto's message and field names,
and every field against tritonclient's own descriptors (name, number, type).
"""
