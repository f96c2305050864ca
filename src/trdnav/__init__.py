"""TRD Navigator: decision support for clinics treating treatment-resistant depression."""

__version__ = "0.1.0"
__all__ = ["__version__"]
