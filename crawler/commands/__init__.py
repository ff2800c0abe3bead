"""Project commands (``COMMANDS_MODULE``): ``crawl`` with one-line user errors."""
