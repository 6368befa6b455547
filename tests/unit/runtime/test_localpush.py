"""localpush.py: createPushMessage's and setPushChannel's options, with uni's reasons."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from unipush_bridge.runtime.localpush import (
    DEFAULT,
    DEFAULT_CHANNEL,
    MAX_DELAY_S,
    MAX_TEXT,
    Channel,
    LocalPush,
    OptionError,
    js_number,
    parse_channel,
    parse_local_push,
)


def reason(params: dict[str, Any]) -> str:
    with pytest.raises(OptionError) as info:
        parse_local_push(params)
    return str(info.value)


def channel_reason(params: dict[str, Any]) -> str:
    with pytest.raises(OptionError) as info:
        parse_channel(params)
    return str(info.value)


# createPushMessage: defaults --------------------------------------------------------------


def test_defaults() -> None:
    push = parse_local_push({"content": "hello"})
    assert push == LocalPush(content="hello")
    assert push.title is None
    assert push.payload is None
    assert push.icon is None
    assert push.sound == "system"
    assert push.cover is False
    assert push.delay == 0.0
    assert push.when is None
    assert push.channel_id == DEFAULT_CHANNEL == "DcloudChannelID"
    assert push.category is None


def test_every_option_is_taken() -> None:
    push = parse_local_push(
        {
            "content": "内容",
            "title": "标题",
            "payload": {"k": [1, 2]},
            "icon": "_www/static/logo.png",
            "sound": "none",
            "cover": True,
            "delay": 2,
            "when": 1767323045000,
            "channelId": "urgent",
            "category": "im",
        }
    )
    assert push == LocalPush(
        content="内容",
        title="标题",
        payload={"k": [1, 2]},
        icon="_www/static/logo.png",
        sound="none",
        cover=True,
        delay=2.0,
        when=1767323045000,
        channel_id="urgent",
        category="im",
    )
    assert isinstance(push.delay, float)


def test_unknown_options_are_ignored() -> None:
    push = parse_local_push({"content": "x", "success": None, "zzz": [1]})
    assert push == LocalPush(content="x")


def test_path_is_kept_for_the_click() -> None:
    assert parse_local_push({"content": "x", "path": "/pages/a?id=1"}).path == "/pages/a?id=1"


@pytest.mark.parametrize("category", [{"huawei": "IM"}, 7, ["IM"]])
def test_a_category_that_is_not_a_string_is_ignored(category: Any) -> None:
    """A sender's vendor object ({"huawei": "IM"}), as a receive's data carries it."""
    assert parse_local_push({"content": "x", "category": category}).category is None


@pytest.mark.parametrize("payload", ["text", 0, False, [1], {"a": {"b": None}}])
def test_payload_is_any_json_value(payload: Any) -> None:
    assert parse_local_push({"content": "x", "payload": payload}).payload == payload


def test_empty_channel_id_means_the_default_channel() -> None:
    assert parse_local_push({"content": "x", "channelId": ""}).channel_id == DEFAULT_CHANNEL


def test_null_title_and_channel_mean_their_defaults() -> None:
    push = parse_local_push({"content": "x", "title": None, "channelId": None, "icon": None})
    assert (push.title, push.channel_id, push.icon) == (None, DEFAULT_CHANNEL, None)


# createPushMessage: content and title ---------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"content": None}, {"content": ""}, {"title": "t"}])
def test_content_is_required(params: dict[str, Any]) -> None:
    assert reason(params) == "content is required"


@pytest.mark.parametrize("content", [1, 0.5, True, ["x"], {"a": 1}])
def test_content_must_be_a_string(content: Any) -> None:
    assert reason({"content": content}) == "content must be a string"


@pytest.mark.parametrize("title", [1, False, ["t"], {"t": 1}])
def test_title_must_be_a_string(title: Any) -> None:
    assert reason({"content": "x", "title": title}) == "title must be a string"


def test_long_titles_are_taken_up_to_max_text() -> None:
    # cut for display by the notifier (notifier.MAX_TITLE), refused only past MAX_TEXT
    assert MAX_TEXT == 64 * 1024
    assert parse_local_push({"content": "x", "title": "T" * 300}).title == "T" * 300
    assert parse_local_push({"content": "x", "title": "T" * MAX_TEXT}).title == "T" * MAX_TEXT
    assert reason({"content": "x", "title": "T" * (MAX_TEXT + 1)}) == (
        f"title must be at most {MAX_TEXT} characters"
    )


def test_empty_title_is_kept() -> None:
    assert parse_local_push({"content": "x", "title": ""}).title == ""


# createPushMessage: sound and cover ----------------------------------------------------------


@pytest.mark.parametrize("sound", ["system", "none"])
def test_sound_system_or_none(sound: str) -> None:
    assert parse_local_push({"content": "x", "sound": sound}).sound == sound


@pytest.mark.parametrize("sound", ["default", "pushsound", "", "SYSTEM", None])
def test_any_other_sound_is_the_system_one(sound: Any) -> None:
    """uni-app x: anything but "none" plays the system sound, so a receive's data
    with the sender's ringtone name can go straight back to createPushMessage."""
    assert parse_local_push({"content": "x", "sound": sound}).sound == "system"


@pytest.mark.parametrize("sound", [1, True, ["none"]])
def test_sound_that_is_not_a_string_fails(sound: Any) -> None:
    assert reason({"content": "x", "sound": sound}) == "sound must be 'system' or 'none'"


@pytest.mark.parametrize("cover", [True, False])
def test_cover_boolean(cover: bool) -> None:
    assert parse_local_push({"content": "x", "cover": cover}).cover is cover


@pytest.mark.parametrize(("cover", "means"), [(None, False), ("true", True), ("False", False)])
def test_cover_unset_or_as_text(cover: Any, means: bool) -> None:
    assert parse_local_push({"content": "x", "cover": cover}).cover is means


@pytest.mark.parametrize("cover", [1, 0, "yes", []])
def test_cover_must_be_a_boolean(cover: Any) -> None:
    assert reason({"content": "x", "cover": cover}) == "cover must be a boolean"


# createPushMessage: delay ----------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 0.0, 0.25, 3, MAX_DELAY_S, float(MAX_DELAY_S)])
def test_delay_accepted(delay: float) -> None:
    assert parse_local_push({"content": "x", "delay": delay}).delay == float(delay)


@pytest.mark.parametrize(("delay", "seconds"), [(None, 0.0), ("3", 3.0), ("0.5", 0.5)])
def test_delay_unset_or_as_text(delay: Any, seconds: float) -> None:
    assert parse_local_push({"content": "x", "delay": delay}).delay == seconds


def test_delay_limit_is_30_days() -> None:
    assert MAX_DELAY_S == 30 * 24 * 3600


@pytest.mark.parametrize("delay", [-1, -0.001, "-3", True, False, [3], {"s": 3}])
def test_delay_negative_or_not_a_number_fails(delay: Any) -> None:
    assert reason({"content": "x", "delay": delay}) == (
        "delay must be a number of seconds, 0 or more"
    )


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [(" 5 ", 5.0), ("1e3", 1000.0), ("\u00a05\ufeff", 5.0), ("\n.5\t", 0.5), ("5.", 5.0)],
)
def test_delay_text_reads_as_js_number(delay: str, seconds: float) -> None:
    """JavaScript's Number(): ECMAScript's white space around a decimal numeral."""
    assert parse_local_push({"content": "x", "delay": delay}).delay == seconds


#: Text Python's float() takes and Number() reads otherwise: NaN ("3_0", Arabic-Indic
#: "١٢", "infinity", "nan", U+001C around), or a form a delay has no use for ("0x10"
#: is 16, "" and "Infinity" are 0 and Infinity to Number()).
NOT_DECIMAL = [
    "3_0",
    "١٢",
    "１２",
    "0x10",
    "0b1",
    "0o7",
    "infinity",
    "Infinity",
    "nan",
    "",
    " ",
    "\x1c5",
    "5\x85",
    "1e",
    "e3",
    ".",
    "+-1",
    "1,5",
    "soon",
]


@pytest.mark.parametrize("delay", NOT_DECIMAL)
def test_delay_text_that_is_not_a_decimal_numeral_fails(delay: str) -> None:
    assert reason({"content": "x", "delay": delay}) == (
        'delay must be a number of seconds, 0 or more; as a string, a decimal numeral such as "2.5"'
    )


def test_numerals_read_as_node_reads_them() -> None:
    """Each text taken is the number node's Number() makes of it; each Number() makes
    NaN of is refused (the refused forms above it reads as a number are listed)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    texts = [
        *NOT_DECIMAL,
        " 5 ",
        "1e3",
        "1E+3",
        "2.5e-1",
        "\u00a05\ufeff",
        "\u20285\u3000",
        "007",
        "-0",
        "+3",
        ".5",
        "5.",
        "0.1",
        "123456789012345678901234567890",
        "1e400",
        "\u200b5",
        "5\u180e",
    ]
    # String(-0) is "0": the sign is said outright, so "-0" is checked as -0.0.
    script = (
        "const t = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(t.map(s => Number(s)).map("
        "n => (Object.is(n, -0) ? '-0' : String(n)))))"
    )
    out = subprocess.run(
        [node, "-e", script, json.dumps(texts)], capture_output=True, text=True, check=True
    )
    number_forms = {"0x10", "0b1", "0o7", "Infinity", "", " "}
    for text, js in zip(texts, json.loads(out.stdout), strict=True):
        ours = js_number(text)
        if js == "NaN" or text in number_forms:
            assert ours is None, text
        else:
            assert ours is not None and repr(ours) == repr(float(js)), (text, js, ours)


@pytest.mark.parametrize("delay", [MAX_DELAY_S + 1, MAX_DELAY_S + 0.5, float("inf")])
def test_delay_over_30_days_fails(delay: float) -> None:
    assert reason({"content": "x", "delay": delay}) == (
        f"delay must be at most {MAX_DELAY_S} seconds (30 days)"
    )


def test_delay_nan_fails() -> None:
    assert reason({"content": "x", "delay": float("nan")}) == (
        "delay must be a number of seconds, 0 or more"
    )


# createPushMessage: when ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "ms"),
    [
        (1767323045000, 1767323045000),
        (0, 0),
        (1767323045000.9, 1767323045000),
        ("2026-01-02T03:04:05Z", 1767323045000),
        ("2026-01-02T03:04:05.123Z", 1767323045123),
        ("2026-01-02T03:04:05+00:00", 1767323045000),
        ("2026-01-02T11:04:05+08:00", 1767323045000),
        ("1767323045000", 1767323045000),
        (" 1767323045000\n", 1767323045000),
        ("1.767323045e12", 1767323045000),
        ("1767323045000.9", 1767323045000),
        # A date alone is UTC midnight, as new Date("2026-01-02") reads it in JS.
        ("2026-01-02", 1767312000000),
    ],
)
def test_when_as_ms_or_iso(when: Any, ms: int) -> None:
    parsed = parse_local_push({"content": "x", "when": when}).when
    assert parsed == ms
    assert isinstance(parsed, int)


@pytest.mark.parametrize(
    "when",
    [
        "garbage",
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        True,
        False,
        [1],
        {"t": 1},
        "²",  # isdigit(), but no int() takes it
        "1_767_323_045_000",  # float() and int() take it, Number() does not
        "١٧٦٧٣٢٣٠٤٥٠٠٠",  # so does this (Arabic-Indic digits)
        "0x19b7d2c6e88",
    ],
)
def test_when_garbage_fails(when: Any) -> None:
    assert reason({"content": "x", "when": when}) == (
        "when must be a time: ms since the epoch or an ISO 8601 date"
    )


WHEN_RANGE = (
    "when must be within 8640000000000000 ms (JavaScript Date's range, 275760 years) of the epoch"
)


@pytest.mark.parametrize("when", [8.64e15, -8.64e15, 8640000000000000, "-8.64e15", -1])
def test_when_takes_all_of_a_js_date(when: Any) -> None:
    assert parse_local_push({"content": "x", "when": when}).when == int(float(when))


@pytest.mark.parametrize(
    "when",
    [
        1e300,
        -1e300,
        float("inf"),
        float("-inf"),
        8.64e15 + 2,
        8640000000000001,
        10**300,
        "1e300",
        "9" * 5000,
    ],
)
def test_when_past_a_js_date_fails(when: Any) -> None:
    """1e300 was kept, and shown in history, as a 301-digit number."""
    assert reason({"content": "x", "when": when}) == WHEN_RANGE


@pytest.mark.parametrize("delay", [10**400, "1e300", "2592000.001", "1e400"])
def test_delay_past_30_days_in_any_form_fails(delay: Any) -> None:
    assert reason({"content": "x", "delay": delay}) == (
        f"delay must be at most {MAX_DELAY_S} seconds (30 days)"
    )


@pytest.mark.parametrize("delay", [1e-300, "-0", -0.0, "2592000"])
def test_delay_edges_are_taken(delay: Any) -> None:
    assert 0 <= parse_local_push({"content": "x", "delay": delay}).delay <= MAX_DELAY_S


def test_when_none_is_now() -> None:
    assert parse_local_push({"content": "x", "when": None}).when is None


@pytest.mark.parametrize("when", [float("nan")])
def test_when_non_finite_fails_with_the_reason(when: float) -> None:
    assert reason({"content": "x", "when": when}) == (
        "when must be a time: ms since the epoch or an ISO 8601 date"
    )


# createPushMessage: strings with limits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "limit"),
    [("channelId", 128), ("category", 128), ("icon", 2048), ("title", MAX_TEXT)],
)
def test_string_limits(key: str, limit: int) -> None:
    field = {"channelId": "channel_id"}.get(key, key)
    assert getattr(parse_local_push({"content": "x", key: "a" * limit}), field) == "a" * limit
    assert reason({"content": "x", key: "a" * (limit + 1)}) == (
        f"{key} must be at most {limit} characters"
    )


@pytest.mark.parametrize("key", ["channelId", "icon", "path"])
def test_strings_must_be_strings(key: str) -> None:
    assert reason({"content": "x", key: 7}) == f"{key} must be a string"


def test_content_has_no_length_limit_here() -> None:
    # the notifier cuts long text when it shows it (docs/architecture.md)
    assert parse_local_push({"content": "b" * 100_000}).content == "b" * 100_000


# setPushChannel ------------------------------------------------------------------------------


def test_channel_defaults() -> None:
    channel = parse_channel({"channelId": "c", "channelDesc": "Chat"})
    assert channel == Channel("c", "Chat")
    assert channel.sound_name is None
    assert (channel.enable_lights, channel.enable_vibration) == (False, False)
    assert channel.importance == 3
    assert channel.lockscreen_visibility == -1000
    assert channel.urgency == "normal"


def test_channel_every_field() -> None:
    channel = parse_channel(
        {
            "channelId": "urgent",
            "channelDesc": "Urgent",
            "soundName": "ding",
            "enableLights": True,
            "enableVibration": True,
            "importance": 4,
            "lockscreenVisibility": 1,
            "unknown": "ignored",
        }
    )
    assert channel == Channel("urgent", "Urgent", "ding", True, True, 4, 1)


@pytest.mark.parametrize("params", [{}, {"channelId": ""}, {"channelId": None, "channelDesc": "d"}])
def test_channel_id_is_required(params: dict[str, Any]) -> None:
    assert channel_reason({"channelDesc": "d", **params}) == "channelId is required"


@pytest.mark.parametrize("params", [{}, {"channelDesc": ""}, {"channelDesc": None}])
def test_channel_desc_is_required(params: dict[str, Any]) -> None:
    assert channel_reason({"channelId": "c", **params}) == "channelDesc is required"


def test_channel_strings() -> None:
    assert channel_reason({"channelId": 1, "channelDesc": "d"}) == "channelId must be a string"
    assert channel_reason({"channelId": "c", "channelDesc": 1}) == "channelDesc must be a string"
    assert channel_reason({"channelId": "c" * 65, "channelDesc": "d"}) == (
        "channelId must be at most 64 characters"
    )
    assert parse_channel({"channelId": "c" * 64, "channelDesc": "d" * 256}).channel_id == "c" * 64
    assert channel_reason({"channelId": "c", "channelDesc": "d" * 257}) == (
        "channelDesc must be at most 256 characters"
    )


@pytest.mark.parametrize("name", ["ding", "ding.oga", "my-sound_2", "a" * 64])
def test_sound_name_file_name(name: str) -> None:
    assert parse_channel({"channelId": "c", "channelDesc": "d", "soundName": name}).sound_name == (
        name
    )


@pytest.mark.parametrize("name", ["../ding", "sounds/ding", "/usr/share/sounds/x.oga", ".hidden"])
def test_sound_name_without_path(name: str) -> None:
    assert channel_reason({"channelId": "c", "channelDesc": "d", "soundName": name}) == (
        "soundName must be a file name in the sounds directory, no path"
    )


def test_sound_name_string_and_limit() -> None:
    base = {"channelId": "c", "channelDesc": "d"}
    assert channel_reason({**base, "soundName": 3}) == "soundName must be a string"
    assert channel_reason({**base, "soundName": "a" * 65}) == (
        "soundName must be at most 64 characters"
    )


@pytest.mark.parametrize(("importance", "urgency"), [(2, "low"), (3, "normal"), (4, "critical")])
def test_importance_to_urgency(importance: int, urgency: str) -> None:
    channel = parse_channel({"channelId": "c", "channelDesc": "d", "importance": importance})
    assert channel.importance == importance
    assert channel.urgency == urgency


IMPORTANCE_RULE = "importance must be one of Android's 0 to 5: 2 (low), 3 (default), 4 (high)"


@pytest.mark.parametrize(("importance", "kept"), [(0, 2), (1, 2), (5, 4)])
def test_androids_other_importances_are_low_or_high(importance: int, kept: int) -> None:
    channel = parse_channel({"channelId": "c", "channelDesc": "d", "importance": importance})
    assert channel.importance == kept


@pytest.mark.parametrize("importance", [6, -1, "3", None, True, False, 2.5])
def test_importance_other_values_fail(importance: Any) -> None:
    assert channel_reason({"channelId": "c", "channelDesc": "d", "importance": importance}) == (
        IMPORTANCE_RULE
    )


@pytest.mark.parametrize("importance", [[3], {"v": 3}])
def test_importance_unhashable_fails_with_the_reason(importance: Any) -> None:
    assert channel_reason({"channelId": "c", "channelDesc": "d", "importance": importance}) == (
        IMPORTANCE_RULE
    )


@pytest.mark.parametrize("value", [0, 1, -1, -1000])
def test_lockscreen_visibility_values(value: int) -> None:
    channel = parse_channel({"channelId": "c", "channelDesc": "d", "lockscreenVisibility": value})
    assert channel.lockscreen_visibility == value


@pytest.mark.parametrize("value", [2, -2, 1000, "1", None, True, False, [0]])
def test_lockscreen_visibility_other_values_fail(value: Any) -> None:
    params = {"channelId": "c", "channelDesc": "d", "lockscreenVisibility": value}
    assert channel_reason(params) == "lockscreenVisibility must be 0, 1, -1 or -1000"


@pytest.mark.parametrize("key", ["enableLights", "enableVibration"])
@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_flags_must_be_booleans(key: str, value: Any) -> None:
    assert channel_reason({"channelId": "c", "channelDesc": "d", key: value}) == (
        f"{key} must be a boolean"
    )


def test_default_channel() -> None:
    assert Channel("DcloudChannelID", "Default") == DEFAULT
    assert DEFAULT.urgency == "normal"
    assert DEFAULT.to_uni() == {
        "channelId": "DcloudChannelID",
        "channelDesc": "Default",
        "soundName": None,
        "enableLights": False,
        "enableVibration": False,
        "importance": 3,
        "lockscreenVisibility": -1000,
    }


def test_to_uni_names_are_uni_names() -> None:
    channel = Channel("urgent", "Urgent", "ding", True, False, 4, -1)
    assert channel.to_uni() == {
        "channelId": "urgent",
        "channelDesc": "Urgent",
        "soundName": "ding",
        "enableLights": True,
        "enableVibration": False,
        "importance": 4,
        "lockscreenVisibility": -1,
    }


@pytest.mark.parametrize(
    "channel",
    [
        DEFAULT,
        Channel("urgent", "Urgent", "ding", True, True, 4, 1),
        Channel("quiet", "安静", None, False, True, 2, 0),
        Channel("c" * 64, "d" * 256, "s" * 64, False, False, 3, -1),
    ],
)
def test_parse_channel_round_trip(channel: Channel) -> None:
    assert parse_channel(channel.to_uni()) == channel
