import functools

import numpy as np
import pytest

from bbcodec.ans import Stack
from bbcodec.format import constants
from bbcodec.format.container import VERSION
from bbcodec.codecs import categorical, grid_gaussian, serial, uniform

seed_words = functools.partial(constants.seed_words, version=VERSION)  # the current format's


def test_gaussian_round_trip_and_lifo():
    rng = np.random.default_rng(0)
    st = Stack(seed_words(100))
    means, stds = rng.normal(size=50), rng.uniform(0.5, 3, 50)
    a = rng.integers(-10, 11, 50).astype(np.int32)
    b = rng.integers(0, 7, 30).astype(np.int32)
    st.push_gaussian(a, -10, 10, means, stds)
    st.push_uniform(b, 7)
    assert np.array_equal(st.pop_uniform(30, 7), b)
    assert np.array_equal(st.pop_gaussian(-10, 10, means, stds), a)
    assert np.array_equal(st.words(), seed_words(100))


def test_categorical_round_trip_and_rate():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(256) * 0.3, size=2000)
    x = np.array([rng.choice(256, p=row) for row in p], dtype=np.int32)
    st = Stack()
    c = categorical(p)
    c.push(st, x)
    ideal = -np.log2(p[np.arange(len(x)), x]).sum()
    assert st.num_bits() <= ideal * 1.01 + 64
    assert np.array_equal(c.pop(st), x)


def test_seed_prefix_survives_below_the_consumed_part():
    """The encoder stores only what it drew from the seed: the untouched bottom stays equal."""
    seed = seed_words(64)
    st = Stack(seed)
    st.pop_uniform(10, 256)  # draws 80 bits from the top of the seed
    st.push_uniform(np.arange(5, dtype=np.int32), 256)
    w = st.words()
    assert np.array_equal(w[:50], seed[:50])
    assert not np.array_equal(w, seed)


def test_grid_gaussian_indices_and_range_guard():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=40) * 3
    c = grid_gaussian(0.25, mean, 0.5, radius=16)
    st = Stack(seed_words(40))
    n = c.pop(st)  # a sample: indices near mean / delta
    assert np.all(np.abs(n - np.rint(mean / 0.25)) <= 16)
    c.push(st, n)
    assert np.array_equal(st.words(), seed_words(40))
    with pytest.raises(OverflowError):
        c.push(st, n + 1000)


def test_serial_orders_pops_forward():
    st = Stack(seed_words(8))
    c = serial([uniform(3, 10), uniform(2, 5)])
    c.push(st, [np.array([1, 2, 3]), np.array([4, 0])])
    a, b = c.pop(st)
    assert a.tolist() == [1, 2, 3] and b.tolist() == [4, 0]


def test_seed_words_is_a_fixed_format_constant():
    w = seed_words(4)
    assert w.dtype == np.uint32 and np.all(w > 0)
    assert np.array_equal(seed_words(10)[:4], w)
