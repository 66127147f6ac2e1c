.PHONY: setup chat test eval bench
setup:
	bash scripts/setup.sh

chat: setup
	.venv/bin/rag ui

test: setup
	.venv/bin/python -m pytest -m "slow or not slow"

eval: setup
	.venv/bin/rag eval
