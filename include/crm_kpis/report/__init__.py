"""The report: what to say (context from the history, what changed, KPI alerts' verdicts, status
against targets) and how it looks (charts, HTML from Jinja templates, the PDF)."""
