"""Kubernetes quantities: parsing, canonical formatting, request derivation, bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webservice.model import quantity
from webservice.errors import InputError

Ki, Mi, Gi, Ti, Pi, Ei = (2**10, 2**20, 2**30, 2**40, 2**50, 2**60)


# --- parse: every suffix ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", Decimal(1)),
        ("0", Decimal(0)),
        ("1n", Decimal("1e-9")),
        ("1u", Decimal("1e-6")),
        ("1m", Decimal("0.001")),
        ("500m", Decimal("0.5")),
        ("1k", Decimal(10**3)),
        ("1M", Decimal(10**6)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(Ki)),
        ("1Mi", Decimal(Mi)),
        ("1Gi", Decimal(Gi)),
        ("1Ti", Decimal(Ti)),
        ("1Pi", Decimal(Pi)),
        ("1Ei", Decimal(Ei)),
        ("7Ei", Decimal(7 * Ei)),
        # e-notation (either case, signed exponent)
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e+3", Decimal(1000)),
        ("5e-1", Decimal("0.5")),
        ("1.5e2", Decimal(150)),
        ("1e0", Decimal(1)),
        # decimals
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1.5Gi", Decimal(1536 * Mi)),
        ("0.5Gi", Decimal(512 * Mi)),
        ("2.5G", Decimal(2_500_000_000)),
        ("+1", Decimal(1)),
        ("-1", Decimal(-1)),
        # surrounding whitespace is tolerated (shell quoting, YAML)
        (" 1Gi ", Decimal(Gi)),
    ],
)
def test_parse(text, expected):
    assert quantity.parse(text) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, Decimal(1)),
        (2, Decimal(2)),
        (0.5, Decimal("0.5")),
        (1.5, Decimal("1.5")),
        (1e3, Decimal(1000)),
        (1e16, Decimal(10**16)),
        (536870912, Decimal(512 * Mi)),
    ],
    ids=repr,
)
def test_parse_yaml_numbers(value, expected):
    """YAML gives ints and floats for unquoted numbers (``cpu: 0.5``, ``mem: 536870912``)."""
    assert quantity.parse(value) == expected


def test_parse_yaml_number_from_real_yaml():
    import yaml

    data = yaml.safe_load("cpu: 0.5\nmem: 1073741824\nother: 1e3\n")
    assert quantity.parse_cpu(data["cpu"]) == Decimal("0.5")
    assert quantity.parse_memory(data["mem"]) == Gi
    # PyYAML reads 1e3 (no dot) as a string: still a quantity
    assert quantity.parse(data["other"]) == 1000


# --- parse_cpu / parse_memory ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, cores",
    [
        ("0.5", "0.5"),
        (".5", "0.5"),
        ("500m", "0.5"),
        ("1", "1"),
        ("2", "2"),
        ("1m", "0.001"),
        ("1.5", "1.5"),
        ("250m", "0.25"),
        ("1e-3", "0.001"),
        ("1000000n", "0.001"),
        ("1000u", "0.001"),
        (0.5, "0.5"),
        (1, "1"),
    ],
)
def test_parse_cpu(text, cores):
    assert quantity.parse_cpu(text) == Decimal(cores)


@pytest.mark.parametrize(
    "text, size",
    [
        ("512Mi", 512 * Mi),
        ("1Gi", Gi),
        ("1.5Gi", 1536 * Mi),
        ("2G", 2 * 10**9),
        ("1Mi", Mi),
        ("1048576", Mi),
        ("1e9", 10**9),
        ("0.5Gi", 512 * Mi),
        ("4Gi", 4 * Gi),
        (1073741824, Gi),
    ],
)
def test_parse_memory(text, size):
    assert quantity.parse_memory(text) == size


# --- bad input: one line, InputError, naming the thing -------------------------------------


BAD_ANY = [
    "",
    " ",
    "1.5.5",
    "5 Gi",
    "1Mb",
    "1gi",
    "1GI",
    "1KI",
    "1K",  # Kubernetes has lowercase k only
    "Gi",
    "e3",
    "1e",
    "1e3Gi",
    "1Gi2",
    "0x10",
    "1_000",
    "١",  # Arabic-Indic digit one
    "１",  # fullwidth digit one
    "1\n2",
    "1;rm -rf /",
    "--1",
    "+-1",
    "1e999",
    "1e-999",
    "1e31",
    "9" * 30,
    "1" * 65,
    "10Ei",
    "100000000000000000000",
    "inf",
    "nan",
    "Infinity",
    float("inf"),
    float("nan"),
    float("-inf"),
    10**30,
    True,
    False,
    None,
    [],
    ["1Gi"],
    {"mem": "1Gi"},
    b"1Gi",
    Decimal("1"),
    object(),
]


@pytest.mark.parametrize("value", BAD_ANY, ids=lambda v: repr(v)[:30])
@pytest.mark.parametrize("func", [quantity.parse, quantity.parse_cpu, quantity.parse_memory])
def test_bad_quantities(func, value):
    with pytest.raises(InputError) as info:
        func(value, "--thing")
    message = str(info.value)
    assert type(info.value) is InputError
    assert "\n" not in message
    assert message.startswith("--thing: ")
    assert len(message) < 200


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0", "more than 0"),
        ("-1", "more than 0"),
        ("-0.5", "more than 0"),
        ("0m", "more than 0"),
        ("0.0001", "finer than one millicore"),
        ("1.0005", "finer than one millicore"),
        ("1n", "finer than one millicore"),
        ("1u", "finer than one millicore"),
        ("100u", "finer than one millicore"),
        ("1.00000000000000000000000000001", "finer than one millicore"),
    ],
)
def test_bad_cpu(text, fragment):
    with pytest.raises(InputError) as info:
        quantity.parse_cpu(text)
    assert fragment in str(info.value)
    assert str(info.value).startswith("--cpu: ")
    assert info.value.hint
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0", "more than 0"),
        ("0Gi", "more than 0"),
        ("-1Gi", "more than 0"),
        ("0.5", "whole number of bytes"),
        ("1.5", "whole number of bytes"),
        ("1m", "whole number of bytes"),
        ("1.0000000001Ki", "whole number of bytes"),
        # more digits than Decimal's default precision: must not round to a whole 1Gi
        ("1.0000000000000000000000000000001Gi", "whole number of bytes"),
        ("512", "less than 1Mi"),
        ("1000Ki", "less than 1Mi"),
        ("1k", "less than 1Mi"),
    ],
)
def test_bad_memory(text, fragment):
    with pytest.raises(InputError) as info:
        quantity.parse_memory(text)
    assert fragment in str(info.value)
    assert str(info.value).startswith("--mem: ")
    assert "\n" not in str(info.value)


def test_error_names_the_value_and_what():
    with pytest.raises(InputError) as info:
        quantity.parse_memory("5 Gi", "mem in service.template")
    assert str(info.value) == "mem in service.template: '5 Gi' is not a Kubernetes quantity"
    assert "1.5Gi" in info.value.hint


def test_long_input_is_shortened_in_the_message():
    with pytest.raises(InputError) as info:
        quantity.parse("x" * 10_000)
    assert len(str(info.value)) < 120
    with pytest.raises(InputError) as info:
        quantity.parse(list(range(10_000)))
    assert len(str(info.value)) < 120


def test_newline_in_input_does_not_break_the_line():
    with pytest.raises(InputError) as info:
        quantity.parse("1Gi\nevil")
    assert "\n" not in str(info.value)


# --- canonical formatting ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("0.5", "500m"),
        (".5", "500m"),
        ("500m", "500m"),
        ("1", "1"),
        ("1000m", "1"),
        ("2", "2"),
        ("1.5", "1500m"),
        ("1m", "1m"),
        ("250m", "250m"),
        ("1e-3", "1m"),
        ("1.25", "1250m"),
        ("16", "16"),
    ],
)
def test_format_cpu(text, canonical):
    assert quantity.format_cpu(quantity.parse_cpu(text)) == canonical


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("1.5Gi", "1536Mi"),
        ("512Mi", "512Mi"),
        ("0.5Gi", "512Mi"),
        ("1024Mi", "1Gi"),
        ("1Gi", "1Gi"),
        ("2G", "2G"),  # exact in Ki too (1953125Ki), but 2G is what was meant
        ("1G", "1G"),
        ("1000M", "1G"),
        ("1500M", "1500M"),
        ("1000Mi", "1000Mi"),
        ("1.5G", "1500M"),
        ("1e9", "1G"),
        ("1048576", "1Mi"),
        ("1048577", "1048577"),
        ("1024000Ki", "1000Mi"),
        ("3Ti", "3Ti"),
        ("2Ei", "2Ei"),
        ("1.25Mi", "1280Ki"),
    ],
)
def test_format_memory(text, canonical):
    assert quantity.format_memory(quantity.parse_memory(text)) == canonical


@pytest.mark.parametrize(
    "size, canonical",
    [
        (0, "0"),
        (1, "1"),
        (1000, "1k"),
        (1024, "1Ki"),
        (1024000, "1000Ki"),  # tie between 1000Ki and 1024k: binary wins
        (10**18, "1E"),
        (2**60, "1Ei"),
    ],
)
def test_format_memory_raw_sizes(size, canonical):
    assert quantity.format_memory(Decimal(size)) == canonical


# --- request derivation (REFERENCE section 5) ---------------------------------------------


@pytest.mark.parametrize(
    "limit, expected",
    [
        ("1Gi", "512Mi"),
        ("512Mi", "256Mi"),
        ("1.5Gi", "768Mi"),
        ("4Gi", "2Gi"),
        ("256Mi", "128Mi"),  # at the threshold: halved
        ("255Mi", "255Mi"),  # below: the limit itself
        ("128Mi", "128Mi"),
        ("100Mi", "100Mi"),
        ("2G", "1G"),
        ("268435457", "134217729"),  # odd byte count: rounded up to a whole byte
    ],
)
def test_memory_request_for(limit, expected):
    derived = quantity.memory_request_for(quantity.parse_memory(limit))
    assert derived == quantity.parse_memory(expected)
    assert derived == derived.to_integral_value()


@pytest.mark.parametrize(
    "limit, expected",
    [
        ("1", "500m"),
        ("0.5", "250m"),
        ("2", "1"),
        ("250m", "125m"),  # at the threshold: halved
        ("249m", "249m"),  # below: the limit itself
        ("100m", "100m"),
        ("1m", "1m"),
        ("251m", "126m"),  # 125.5m rounded up to a whole millicore
        ("1.5", "750m"),
    ],
)
def test_cpu_request_for(limit, expected):
    derived = quantity.cpu_request_for(quantity.parse_cpu(limit))
    assert derived == quantity.parse_cpu(expected)
    assert quantity.format_cpu(derived) == expected


@given(st.integers(min_value=1, max_value=64_000))
def test_cpu_request_never_above_limit_and_valid(millis):
    limit = Decimal(millis) / 1000
    request = quantity.cpu_request_for(limit)
    assert 0 < request <= limit
    assert quantity.parse_cpu(quantity.format_cpu(request)) == request


@given(st.integers(min_value=Mi, max_value=64 * Gi))
def test_memory_request_never_above_limit_and_valid(size):
    limit = Decimal(size)
    request = quantity.memory_request_for(limit)
    assert 0 < request <= limit
    assert quantity.parse_memory(quantity.format_memory(request)) == request


# --- properties ------------------------------------------------------------------------------

QUANTITY_ALPHABET = "0123456789.+-eEnumkMGTPKi \t"


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.text(alphabet=QUANTITY_ALPHABET, max_size=12)))
@pytest.mark.parametrize("func", [quantity.parse, quantity.parse_cpu, quantity.parse_memory])
def test_any_text_parses_or_raises_input_error(func, text):
    try:
        value = func(text)
    except InputError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(value, Decimal)
        assert value.is_finite()


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
    )
)
def test_any_yaml_scalar_parses_or_raises_input_error(value):
    try:
        quantity.parse(value)
    except InputError:
        pass


@settings(max_examples=400)
@given(st.text(alphabet=QUANTITY_ALPHABET, max_size=12))
def test_cpu_format_round_trips(text):
    try:
        cores = quantity.parse_cpu(text)
    except InputError:
        return
    assert quantity.parse_cpu(quantity.format_cpu(cores)) == cores


@settings(max_examples=400)
@given(st.text(alphabet=QUANTITY_ALPHABET, max_size=12))
def test_memory_format_round_trips(text):
    try:
        size = quantity.parse_memory(text)
    except InputError:
        return
    assert quantity.parse_memory(quantity.format_memory(size)) == size


@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "Pi"]),
)
def test_memory_built_quantities_round_trip(number, suffix):
    try:
        size = quantity.parse_memory(f"{number}{suffix}")
    except InputError:
        return  # below 1Mi or over range
    text = quantity.format_memory(size)
    assert quantity.parse_memory(text) == size
    assert len(text) <= len(f"{number}{suffix}") + 8


@given(st.integers(min_value=1, max_value=10**7))
def test_cpu_millicores_round_trip(millis):
    text = f"{millis}m"
    cores = quantity.parse_cpu(text)
    assert quantity.parse_cpu(quantity.format_cpu(cores)) == cores
    assert quantity.format_cpu(cores) in (text, str(millis // 1000))


@pytest.mark.parametrize("text", ["1." + "0" * 70, "0" * 70 + "1", "000" + "1" * 2 + "." + "0" * 60 + "m"])
def test_overlong_quantity_text_is_refused_even_when_its_value_is_fine(text):
    """A quantity is at most 64 characters (Kubernetes' own texts are far shorter): the
    bound keeps the exact arithmetic cheap; longer text is refused, whatever it says."""
    assert quantity.parse(text[:64].strip() or "1") is not None  # the same digits, shorter, parse
    with pytest.raises(InputError) as info:
        quantity.parse_cpu(text)
    assert "not a Kubernetes quantity" in str(info.value)
