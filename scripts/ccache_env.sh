# Sourced by scripts/build.sh and scripts/build_san.sh: compile through ccache when it is
# installed (scripts/install_deps.sh installs it), so that a rebuild, another build folder
# or another checkout of the same sources (CI's clean checkout) reuses the objects already
# compiled. Paths are taken relative to the checkout (CCACHE_BASEDIR), so two checkouts
# share their objects. WSE_CCACHE=0 compiles without it.
if [ "${WSE_CCACHE:-1}" != 0 ] && command -v ccache > /dev/null; then
  WSE_LAUNCHER=ccache
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  export CCACHE_NOHASHDIR=1
else
  WSE_LAUNCHER=""
fi
