"""The report: context from the history, HTML from Jinja templates, PDF, email."""
