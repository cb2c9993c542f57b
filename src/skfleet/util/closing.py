"""Objects that ``with`` closes: data sources and engines hold resources until :meth:`close`.

>>> class Pool(Closing):
...     def close(self):
...         print("closed")
>>> with Pool() as pool:
...     pass
closed
"""

from __future__ import annotations


class Closing:
    """``with obj:`` gives ``obj`` and calls ``obj.close()`` on the way out, raised or not."""

    def close(self) -> None:
        """Release what the object holds; the default holds nothing."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
