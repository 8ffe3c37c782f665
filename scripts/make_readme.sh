#!/usr/bin/env bash
# README.md is generated from nbs/index.ipynb (nbconvert works without Quarto).
# Usage: bash scripts/make_readme.sh [output-dir]   (default: the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
jupyter nbconvert --log-level=WARN --to markdown nbs/index.ipynb --output-dir "${1:-.}" --output README
