"""The write pacer: free until the service throttles, then Graph's documented bucket; learning a lower limit;
one budget shared by two processes through the store."""
import pytest

import idsync_testlib  # noqa: F401  (puts the collection on sys.path)

from ansible_collections.idsync.entra.plugins.module_utils.pacing import (
    DOCUMENTED_RATE, DOCUMENTED_WRITES, MemoryBucket, StoreBucket, WritePacer,
)


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def clock():
    return Clock()


def pacer_on(clock, bucket=None):
    return WritePacer(bucket or MemoryBucket(clock), sleep=clock.sleep, clock=clock)


def test_free_until_the_service_throttles(clock):
    pacer = pacer_on(clock)
    for _ in range(100):
        pacer.acquire(80)
        pacer.record(80, 0)
    assert clock.slept == 0.0 and pacer.status()[0] is False


def test_a_lone_429_is_a_transient_fault_not_a_limit(clock):
    pacer = pacer_on(clock)
    assert pacer.record(72, 8, retry_after=1) is False            # 10 % answered 429, no throttle scope
    pacer.acquire(80)
    assert clock.slept == 0.0


def test_throttling_switches_to_the_documented_bucket_after_retry_after(clock):
    pacer = pacer_on(clock)
    assert pacer.record(10, 70, retry_after=3) is True             # most of a wave refused: the limit is reached
    start = clock.now
    pacer.acquire(20)
    # the Retry-After first, then the bucket refills at 20/s from empty: 3 s wait covers 60 tokens
    assert clock.now - start == pytest.approx(3.0)
    start = clock.now
    for _ in range(10):
        pacer.acquire(20)
    assert (clock.now - start) == pytest.approx(10 * 20 / DOCUMENTED_RATE - 40 / DOCUMENTED_RATE)


def test_a_throttle_scope_header_is_a_signal_even_for_one_item(clock):
    pacer = pacer_on(clock)
    assert pacer.record(79, 1, retry_after=1, scoped=True) is True
    assert pacer.status()[0] is True


def test_the_burst_refills_to_the_documented_capacity(clock):
    pacer = pacer_on(clock)
    pacer.record(0, 20, retry_after=1)
    clock.now += 600                                                 # idle: Graph's bucket is full again
    start = clock.now
    for _ in range(DOCUMENTED_WRITES // 100):
        pacer.acquire(100)
    assert clock.now == start                                        # the whole burst without waiting
    pacer.acquire(100)
    assert clock.now - start == pytest.approx(100 / DOCUMENTED_RATE)


def test_refused_while_paced_means_a_lower_limit_and_it_recovers_slowly(clock):
    pacer = pacer_on(clock)
    pacer.record(0, 20, retry_after=1)
    for _ in range(15):                                             # 15 s at an accepted 10 writes/s
        clock.now += 1
        pacer.record(10, 0)
    clock.now += 2
    pacer.record(5, 15, retry_after=1)
    paced, rate, _wait = pacer.status()
    assert paced and rate == pytest.approx(10.0, rel=0.15)
    clock.now += 61
    pacer.record(20, 0)
    assert pacer.status()[1] > rate and pacer.status()[1] <= DOCUMENTED_RATE


def test_two_processes_share_one_budget_through_the_store(tmp_path, clock):
    store = str(tmp_path / "store.db")
    first = pacer_on(clock, StoreBucket(store, "tenant", "app", clock=clock))
    second = pacer_on(clock, StoreBucket(store, "tenant", "app", clock=clock))
    other_app = pacer_on(clock, StoreBucket(store, "tenant", "other", clock=clock))
    first.record(0, 80, retry_after=1)
    clock.now += 0.5
    assert second.status()[0] is True                               # the limit one met, the other follows
    assert other_app.status()[0] is False                           # another application has its own budget
    clock.now += 1
    start = clock.now
    for _ in range(10):
        first.acquire(20)
        second.acquire(20)
    # 400 writes between the two at 20/s (less what had refilled): together they stay under the limit
    assert clock.now - start >= (400 - 30) / DOCUMENTED_RATE


def test_a_few_retries_answered_429_again_are_no_signal(clock):
    pacer = pacer_on(clock)
    assert pacer.record(1, 2, retry_after=1) is False             # the tail of a phase: 3 retried items
    assert pacer.record(2, 18, retry_after=1) is True              # a whole envelope refused is
