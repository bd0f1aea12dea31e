"""Getting a rendered report to people, exactly once: intents recorded before acting, email, Slack
and Teams posts, and the reports store every worker and the UI read the files from."""
