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

/* The Kubernetes version Kubus speaks, in one place so that what the API
 * server's /version says and what kubelets report (Node kubeletVersion,
 * the probes' User-Agent) agree. */
#define KUBUS_KUBE_MAJOR "1"
#define KUBUS_KUBE_MINOR "32"
#define KUBUS_KUBE_VERSION "v1.32.0-kubus.1"

#endif
