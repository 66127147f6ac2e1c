.PHONY: setup chat test eval bench screenshots
setup:
	bash scripts/setup.sh

chat: setup
	.venv/bin/rag ui

test: setup
	.venv/bin/python -m pytest -m "slow or not slow"

# refresh docs/screenshot-*.png (the browser test writes to a temporary folder otherwise)
screenshots: setup
	NEWSRAG_SCREENSHOT_DIR=docs .venv/bin/python -m pytest tests/e2e/test_browser.py -m slow -k screenshots

eval: setup
	.venv/bin/rag eval
