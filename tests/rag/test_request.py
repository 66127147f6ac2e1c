from rag.types import Request


def test_one_source_given_as_a_string_is_one_name():
    """It was listed character by character ('a', '.', 't', ...)."""
    assert Request.of("Who?", sources="a.txt").sources == ("a.txt",)
    assert Request.of("Who?", sources=["a.txt", "b.txt"]).sources == ("a.txt", "b.txt")
    assert Request.of("Who?", history="Where?").history == ("Where?",)
