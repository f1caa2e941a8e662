"""Talks to motstream's gRPC server only through standard tooling: server reflection to list
and describe services, descriptors from reflection to call MotQuery (no generated code), and
grpc.health.v1. Usage: grpc_tooling.py HOST:PORT [--ca CA.pem --token FILE]; with --ca it
connects over TLS and checks that MotQuery refuses calls without the bearer token. Exits 1
naming the first failed check."""

import sys
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def ok(msg):
    print(f"ok   {msg}")


def main(addr, ca=None, token=None):
    if ca:
        with open(ca, "rb") as f:
            channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(addr)
    metadata = ()
    if token:
        with open(token) as f:
            metadata = (("authorization", "Bearer " + f.read().strip()),)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    except grpc.FutureTimeoutError:
        fail(f"no gRPC server at {addr} within 30 s")

    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.time() + 90
    status = None
    while time.time() < deadline:
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        if status == health_pb2.HealthCheckResponse.SERVING:
            break
        time.sleep(0.5)
    if status != health_pb2.HealthCheckResponse.SERVING:
        fail(f"grpc.health.v1 Check(\"\") is {status}, not SERVING, after 90 s")
    svc = health.Check(
        health_pb2.HealthCheckRequest(service="motstream.v1.MotQuery"), timeout=5
    ).status
    if svc != health_pb2.HealthCheckResponse.SERVING:
        fail(f"grpc.health.v1 Check(\"motstream.v1.MotQuery\") is {svc}")
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        fail("health of an unknown service should be NOT_FOUND")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            fail(f"health of an unknown service: {e.code()}")
    ok("grpc.health.v1: SERVING overall and for motstream.v1.MotQuery")

    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    want = {"motstream.v1.MotQuery", "grpc.health.v1.Health"}
    if not want <= services:
        fail(f"reflection lists {sorted(services)}, missing {sorted(want - services)}")
    ok(f"reflection lists {', '.join(sorted(services))}")

    pool = descriptor_pool.DescriptorPool(db)
    mq = pool.FindServiceByName("motstream.v1.MotQuery")
    methods = {m.name for m in mq.methods}
    want_methods = {
        "GetMot", "ListMots", "GetExperience", "ListUnidentifiedMots", "WatchMots",
        "WatchAlerts", "ListAlerts", "ListActiveAlerts",
    }
    if methods != want_methods:
        fail(f"MotQuery describes methods {sorted(methods)}")
    status_fields = {f.name for f in pool.FindMessageTypeByName("motstream.v1.MotStatus").fields}
    for f in ("smoto_rate", "burn_rate", "error_budget_remaining", "alert_state"):
        if f not in status_fields:
            fail(f"motstream.v1.MotStatus lacks {f}")
    ok(f"describe motstream.v1.MotQuery: {len(methods)} methods, MotStatus with {len(status_fields)} fields")

    def call(method, body, metadata=metadata):
        m = mq.FindMethodByName(method)
        req_cls = GetMessageClass(m.input_type)
        resp_cls = GetMessageClass(m.output_type)
        stub = channel.unary_unary(
            f"/motstream.v1.MotQuery/{method}",
            request_serializer=lambda x: x.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        return json_format.MessageToDict(
            stub(json_format.ParseDict(body, req_cls()), timeout=10, metadata=metadata),
            preserving_proto_field_name=True,
        )

    deadline = time.time() + 60
    while True:
        r = call("GetMot", {"mot_id": "bag-drop", "windows": ["1h"]})
        amount = int(r["windows"][0].get("amount", 0))
        if amount > 0:
            break
        if time.time() > deadline:
            fail(f"GetMot bag-drop 1h still has no interactions after 60 s: {r}")
        time.sleep(0.5)
    if r["mot"]["owner_team"] != "airport-ground-ops":
        fail(f"GetMot bag-drop: unexpected catalog facts {r['mot']}")
    ok(f"call GetMot bag-drop 1h: amount {amount}, smoto_rate {r['windows'][0].get('smoto_rate')}")

    r = call("ListMots", {"order_by": "ORDER_BY_AMOUNT", "window": "1h", "page_size": 2})
    if len(r.get("mots", [])) != 2 or not r.get("next_page_token"):
        fail(f"ListMots page_size 2: {r}")
    ok(f"call ListMots: {[m['mot_id'] for m in r['mots']]}, next page token present")

    try:
        call("GetMot", {"mot_id": "bag-drop", "windows": ["5x"]})
        fail("GetMot with window 5x should fail")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT or "windows[0]" not in e.details():
            fail(f"GetMot window 5x: {e.code()} {e.details()}")
    ok("call GetMot with a bad window: INVALID_ARGUMENT naming windows[0]")
    if token:
        try:
            call("GetMot", {"mot_id": "bag-drop"}, metadata=())
            fail("GetMot without the bearer token should be refused")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                fail(f"GetMot without the token: {e.code()} {e.details()}")
        ok("over TLS: MotQuery without the token is UNAUTHENTICATED, with it answers")
    print("gRPC tooling checks passed" + (" (TLS, token)" if ca else ""))


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("--ca")
    p.add_argument("--token")
    a = p.parse_args()
    main(a.addr, a.ca, a.token)
