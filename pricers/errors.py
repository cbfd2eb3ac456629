"""The one exception a pricer raises for bad input or an unusable result."""

from __future__ import annotations


class PricingError(ValueError):
    """A task that cannot be valued; the message names the product, the instrument and the field.

    Scripts print it as one line on stderr and exit non-zero; through `python:pricers:value` its text
    becomes the task's error.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
