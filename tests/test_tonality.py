import pytest

from livegen.tonality import (
    MAJOR_PROFILE,
    MINOR_PROFILE,
    KeyTracker,
    detect_key,
    key_name,
    parse_key,
    scale_pitch_classes,
)

ALL_KEYS = [(tonic, mode) for mode in ("major", "minor") for tonic in range(12)]


def histogram(pitches_and_steps) -> list[float]:
    weights = [0.0] * 12
    for pitch, steps in pitches_and_steps:
        weights[pitch % 12] += steps
    return weights


def test_c_major_scale_is_c_major():
    assert detect_key(histogram((p, 1) for p in (60, 62, 64, 65, 67, 69, 71, 72))) == (0, "major")


def test_a_harmonic_minor_melody_is_a_minor():
    melody = [(69, 1), (71, 1), (72, 1), (74, 1), (76, 1), (77, 1), (80, 1), (81, 1)]
    assert detect_key(histogram(melody)) == (9, "minor")


@pytest.mark.parametrize("tonic, mode", ALL_KEYS)
def test_each_rotated_profile_is_detected_as_its_own_key(tonic, mode):
    profile = MAJOR_PROFILE if mode == "major" else MINOR_PROFILE
    weights = [profile[(pc - tonic) % 12] for pc in range(12)]
    assert detect_key(weights) == (tonic, mode)


def test_detect_key_needs_evidence():
    with pytest.raises(ValueError, match="no evidence"):
        detect_key([0.0] * 12)
    with pytest.raises(ValueError, match="12 entries"):
        detect_key([1.0, 2.0])


def test_scales():
    assert scale_pitch_classes(0, "major") == {0, 2, 4, 5, 7, 9, 11}
    assert scale_pitch_classes(9, "minor") == {9, 11, 0, 2, 4, 5, 6, 7, 8}
    with pytest.raises(ValueError, match="mode"):
        scale_pitch_classes(0, "dorian")


@pytest.mark.parametrize(
    "text, key",
    [
        ("C major", (0, "major")),
        ("F# minor", (6, "minor")),
        ("Bb major", (10, "major")),
        ("eb minor", (3, "minor")),
        ("A", (9, "major")),
        ("Am", (9, "minor")),
        ("bbm", (10, "minor")),
        ("  g  MAJOR ", (7, "major")),
        ("D min", (2, "minor")),
        ("Cb maj", (11, "major")),
    ],
)
def test_parse_key(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H major", "C dorian", "", "CM", "C##", "major"])
def test_parse_key_rejects_nonsense_with_a_clear_message(text):
    with pytest.raises(ValueError) as error:
        parse_key(text)
    assert repr(text) in str(error.value) and "'F# minor'" in str(error.value)


@pytest.mark.parametrize("tonic, mode", ALL_KEYS)
def test_key_name_round_trips(tonic, mode):
    assert parse_key(key_name(tonic, mode)) == (tonic, mode)


def test_key_names_use_usual_spellings():
    assert [key_name(t, "major") for t in (1, 3, 5, 6, 8, 10)] == [
        "Db major",
        "Eb major",
        "F major",
        "F# major",
        "Ab major",
        "Bb major",
    ]
    assert [key_name(t, "minor") for t in (0, 1, 2, 6, 7, 8, 10)] == [
        "C minor",
        "C# minor",
        "D minor",
        "F# minor",
        "G minor",
        "G# minor",
        "Bb minor",
    ]


def test_tracker_needs_two_pitch_classes():
    tracker = KeyTracker()
    assert tracker.key() is None
    tracker.add(60, 4)
    tracker.add(72, 4)
    assert tracker.key() is None
    tracker.add(67, 4)
    assert tracker.key() is not None


C_TUNE = (60, 64, 67, 65, 64, 62, 60, 59, 60, 64, 62, 60)
G_TUNE = (67, 71, 74, 72, 71, 69, 67, 66, 67, 71, 69, 67)


def keys_while_playing(tracker: KeyTracker, tune) -> list:
    keys = []
    for pitch in tune:
        tracker.add(pitch, 4)
        keys.append(tracker.key())
    return keys


def test_tracker_follows_a_modulation_from_c_to_g():
    tracker = KeyTracker(half_life_beats=4)
    assert keys_while_playing(tracker, C_TUNE)[-1] == (0, "major")
    assert keys_while_playing(tracker, G_TUNE)[-5:] == [(7, "major")] * 5


def test_tracker_with_a_long_memory_stays_put():
    tracker = KeyTracker(half_life_beats=1000)
    keys_while_playing(tracker, C_TUNE)
    assert keys_while_playing(tracker, G_TUNE[:8]) == [(0, "major")] * 8


def test_tracker_weights_halve_every_half_life():
    tracker = KeyTracker(half_life_beats=2, steps_per_beat=4)
    tracker.add(60, 8)
    tracker.decay(8)
    assert tracker.weights[0] == pytest.approx(4.0)
    tracker.add_durations([1.0] * 12, elapsed_steps=8)
    assert tracker.weights[0] == pytest.approx(3.0) and tracker.weights[1] == 1.0
    tracker.reset()
    assert tracker.weights == (0.0,) * 12 and tracker.key() is None
