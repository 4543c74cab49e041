# Sets PYTHON to an interpreter >= 3.12: $PYTHON if given, python3.13/3.12 on PATH, python3, or pyenv's.
_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
_find_python() {
    local c v
    if [ -n "${PYTHON:-}" ] && _ok "$PYTHON"; then return 0; fi
    for c in python3.14 python3.13 python3.12 python3; do
        if command -v "$c" >/dev/null 2>&1 && _ok "$(command -v "$c")"; then PYTHON=$(command -v "$c"); return 0; fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare 2>/dev/null | sort -rV); do
            c="$(pyenv root)/versions/$v/bin/python"
            if [ -x "$c" ] && _ok "$c"; then PYTHON=$c; return 0; fi
        done
    fi
    for c in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
        if [ -x "$c" ] && _ok "$c"; then PYTHON=$c; return 0; fi
    done
    echo "error: bayesdl4 needs Python >= 3.12; install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12" >&2
    return 1
}
_find_python
export PYTHON
