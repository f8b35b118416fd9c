#include <cstdlib>

#include <systemc>

#include "apps/wse-emu/cli.h"

int sc_main(int argc, char** argv) { return wse::app::main(argc, argv); }

// Our own main, so that SystemC's banner stays off stdout (where `wse-emu check`
// prints YAML) before the kernel starts.
int main(int argc, char** argv) {
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
