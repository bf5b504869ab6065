"""cleancenter: a bot countermeasure center, from honeypot to cleaned machine."""

__version__ = "0.1.0"
