/* plugins/ctrl-namespace/nsc.h — the namespace controller's state. */
#ifndef KUBUS_CTRL_NS_H
#define KUBUS_CTRL_NS_H

#include "ctrl.h"

struct nsc_cfg {
	struct ctrl_conf ctl;
	int64_t recheck_ms;
};

struct nsc {
	struct ctrl c;
	struct nsc_cfg cfg;
	struct kb_informer *nss;
};

/* Reconcile the namespace `key` (a ctrl_sync_fn). */
int nsc_sync(void *arg, const char *key);

#endif
