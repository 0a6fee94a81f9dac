# shellcheck shell=bash
# Helpers shared by the scripts in this folder: source it, don't run it.
# Paths are relative to the repository root, where the scripts cd first.

# heading prints the banner of a step, so that a failure in a long log can
# be traced to the step that printed it.
heading() {
	printf '\n==> %s\n' "$*"
}

# go_files prints, NUL-separated, every Go file of every module: what the go
# command sees, that is, skipping testdata (fixtures), vendor, node_modules
# and folders whose names start with "." or "_".
go_files() {
	find . -type d \( -name node_modules -o -name testdata -o -name vendor -o -name '[._]?*' \) -prune \
		-o -type f -name '*.go' -print0
}

# modules prints the folder of every Go module, the root (".") first.
modules() {
	find . -type d \( -name node_modules -o -name testdata -o -name vendor -o -name '[._]?*' \) -prune \
		-o -type f -name go.mod -print | sed 's|/go\.mod$||' | sort
}

# module_of prints the folder of the module that holds folder $1: the
# nearest one, going up, with a go.mod.
module_of() {
	local dir=$1
	until [[ -e "$dir/go.mod" || "$dir" == . ]]; do
		dir=$(dirname "$dir")
	done
	printf '%s\n' "$dir"
}
