"""The project's error family. Services raise these; one handler renders them (``exceptions``)."""


class ApplicationError(Exception):
    """An error the client can act on, rendered as ``{"errors": {field: message}}``."""

    status_code = 400

    def __init__(self, errors: dict[str, str], *, status_code: int | None = None) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors
        if status_code is not None:
            self.status_code = status_code


class InvalidInput(ApplicationError):
    """One or more fields are invalid (400)."""


class FeatureDisabled(ApplicationError):
    """The operation is switched off by an operator (403)."""

    status_code = 403
