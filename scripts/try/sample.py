"""A small file to try ai_host on. Type anywhere in insert mode and pause: ghost text appears.

<Tab> accepts it, <M-Right> one word, <C-]> dismisses. On a function, <Space>ae explains it,
<Space>ar proposes a refactor (ga accepts all, gy / gn one hunk). :AIStatus shows the queue.
"""


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number (0, 1, 1, 2, 3, 5, ...)."""
    if n < 2:
        return n
    return 


def is_palindrome(text: str) -> bool:
    """Whether `text` reads the same backwards, ignoring case and spaces."""
    cleaned = text.replace(" ", "").lower()


def word_counts(text: str) -> dict[str, int]:
    """How often each word occurs in `text`."""
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


if __name__ == "__main__":
    print(fibonacci(10), is_palindrome("Never odd or even"), word_counts("a b a"))
