// libsystemc.so refers to the user's sc_main; a fuzz target has LLVMFuzzerTestOneInput
// instead and never starts a simulation, so this one is never called.
extern "C" int sc_main(int /*argc*/, char* /*argv*/[]) { return 0; }
