/* kubus/kubus.h — everything a plugin author needs, in one include. */
#ifndef KUBUS_KUBUS_H
#define KUBUS_KUBUS_H

#include "bus.h"
#include "conf.h"
#include "err.h"
#include "host.h"
#include "mp.h"
#include "plugin.h"
#include "store.h"

#define KUBUS_VERSION "0.1.0"

#endif
