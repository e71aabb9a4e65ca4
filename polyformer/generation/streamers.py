"""Streamers: `generate(..., streamer=s)` calls `s.put(ids)` with the prompt, then with each new token
(batch size 1), and `s.end()` when it finishes. `TextStreamer` prints words as they complete;
`TextIteratorStreamer` hands them to another thread through a queue."""

from __future__ import annotations

from queue import Queue
from typing import Any, Optional


class BaseStreamer:
    """What generate() calls: `put(token_ids)` for new tokens, `end()` once at the end."""

    def put(self, value) -> None:
        raise NotImplementedError()

    def end(self) -> None:
        raise NotImplementedError()


def _is_cjk(cp: int) -> bool:
    """Whether a code point is a CJK ideograph (those are printed one by one, not per word)."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class TextStreamer(BaseStreamer):
    """Print the generated text to stdout as words complete.

    The tokens since the last newline are decoded together (so multi-token characters and words come out
    right); text is printed up to the last space (or the last CJK character, or all of it at a newline).

    Args:
        tokenizer: decodes the tokens.
        skip_prompt: do not print the prompt (the first `put`).
        decode_kwargs: passed to `tokenizer.decode` (e.g. `skip_special_tokens=True`).

    Example:
        >>> streamer = TextStreamer(tokenizer, skip_prompt=True)
        >>> _ = model.generate(**tokenizer(["def fib(n):"], return_tensors="pt"), streamer=streamer, max_new_tokens=20)
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value) -> None:
        if len(value.shape) > 1 and value.shape[0] > 1:
            raise ValueError("TextStreamer only supports batch size 1")
        if len(value.shape) > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):  # a line is complete: print it and start afresh
            printable = text[self.print_len:]
            self.token_cache, self.print_len = [], 0
        elif text and _is_cjk(ord(text[-1])):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:  # up to the last space: the last word may still change
            printable = text[self.print_len: text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        """Print what is left, then a newline."""
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
            self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Where complete text goes: stdout here; subclasses send it elsewhere."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """Like TextStreamer, but the text goes to a queue that iterating the streamer reads — run generate()
    in another thread and consume the text as it comes.

    Args:
        timeout: seconds to wait for the next piece of text (None: forever); `queue.Empty` after that.

    Example:
        >>> streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        >>> Thread(target=model.generate, kwargs=dict(**inputs, streamer=streamer, max_new_tokens=20)).start()
        >>> text = "".join(streamer)
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, timeout: Optional[float] = None,
                 **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value == self.stop_signal:
            raise StopIteration()
        return value
