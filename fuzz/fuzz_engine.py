"""Invariant: an engine fed ANY sequence of datagrams (and time passing)
never raises, and its buffers stay within their configured bounds.

Input format: a sequence of records ``len:u16 | flags:u8 | bytes[len]``;
flags bit 0 advances the clock by 50 ms (firing timers), bit 1 submits a
small payload. Seeds are real traffic recorded from a 3-node ring, so the
fuzzer starts from datagrams that pass every check and mutates from there.
"""

import struct

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.engine", "ringward.wire"])

from ringward.engine import Engine, EngineConfig

import _harness

RECORD = struct.Struct(">HB")
CONFIG = EngineConfig(send_queue_max=64, receive_window_frames_max=256)
# Records per input: bounds one execution's work.
RECORDS_MAX = 200
# Executions in `make test`'s smoke run (each builds and drives an engine).
SMOKE_RUNS = 5000
# Seeds are traffic recorded from the simulator: they change whenever the
# engine's traffic does, and any recording is as good a start as another.
SEEDS_RECORDED = True


def TestOneInput(data: bytes) -> None:
    engine = Engine(2, (1, 2, 3), config=CONFIG)
    now, offset, records = 0.0, 0, 0
    while offset + RECORD.size <= len(data) and records < RECORDS_MAX:
        length, flags = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        datagram = data[offset : offset + length]
        offset += length
        records += 1
        engine.receive(now, datagram)
        if flags & 1:
            now += 0.05
            engine.tick(now)
        if flags & 2 and len(engine.sendq) < CONFIG.send_queue_max:
            engine.submit(now, b"fuzz")
        engine.ready()
        _check_bounds(engine)


def _check_bounds(engine: Engine) -> None:
    for store in (engine.store, engine.new_store):
        if store is not None:
            assert len(store.frames) <= CONFIG.receive_window_frames_max, "store overflow"
    assert len(engine.sendq) <= CONFIG.send_queue_max
    assert len(engine.tokens.hops.seq_at) <= 4 * 3 + 2, "token history unbounded"


def seeds() -> list[bytes]:
    """Traffic node 2 receives in a simulated 3-node ring, cut into inputs."""
    from ringward.sim.faults import FaultSpec
    from ringward.sim.interface import Datagram
    from ringward.sim.runner import Scenario, run_scenario

    flows: list[tuple[bytes, int]] = []

    def record(now: float, d: Datagram) -> list[Datagram]:
        if d.dest == 2 and len(flows) < 400:
            flows.append((d.data, 1 if len(flows) % 7 == 0 else 0))
        return [d]

    scenario = Scenario(nodes=3, seed=1, duration=1.0, rate=40.0, faults=FaultSpec.parse("none"))
    run_scenario(scenario, interceptor=record)
    out = []
    for start in range(0, len(flows), 40):
        chunk = flows[start : start + 40]
        out.append(b"".join(RECORD.pack(len(d), f) + d for d, f in chunk))
    return out


if __name__ == "__main__":
    _harness.main(TestOneInput)
