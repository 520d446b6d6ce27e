/* tests/plugins/no_descriptor.c — a shared object with no descriptor. */
#include <kubus/kubus.h>

KB_PLUGIN_EXPORT int not_a_plugin(void);
KB_PLUGIN_EXPORT int not_a_plugin(void) { return 42; }
