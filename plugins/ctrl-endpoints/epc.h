/* plugins/ctrl-endpoints/epc.h — the Endpoints controller's state and what
 * its files share. */
#ifndef KUBUS_CTRL_EPC_H
#define KUBUS_CTRL_EPC_H

#include "svcpod.h"

/* Most addresses an Endpoints object holds (Kubernetes' maxCapacity);
 * beyond it the object is truncated and annotated. */
#define EPC_MAX_CAPACITY 1000
#define EPC_OVER_CAPACITY "endpoints.kubernetes.io/over-capacity"
#define EPC_HEADLESS "service.kubernetes.io/headless"

struct epc_cfg {
	struct ctrl_conf ctl;
	int64_t max_capacity;
};

struct epc {
	struct ctrl c;
	struct epc_cfg cfg;
	struct kb_informer *svcs, *pods, *eps;
};

/* The key that asks for a scan of Endpoints left behind by Services
 * deleted while no controller ran (queued once at start: workers run only
 * once every cache holds its first list). Not a valid "ns/name". */
#define EPC_LEFTOVER_KEY "/leftover"
#define EPC_LEADER_ANNOTATION "control-plane.alpha.kubernetes.io/leader"

/* Reconcile the Service "ns/name" (a ctrl_sync_fn). */
int epc_sync(void *arg, const char *key);

/* --- subsets.c: endpoint addresses and ports, grouped as Kubernetes'
 * RepackSubsets groups them: the ports offered by exactly the same set of
 * addresses form one subset. -------------------------------------------------- */

struct ep_addr {
	char ip[SP_IP];
	char node[SP_NAME];
	char host[64];
	char ns[SP_NAME];
	char name[SP_NAME];
	char uid[SP_UID];
	bool has_ref;
};

struct ep_pair {
	size_t a; /* index in addrs */
	long p;   /* index in ports, -1: an address with no ports (headless) */
	bool ready;
};

struct ep_set {
	struct ep_addr *addrs;
	size_t na, capa;
	struct sp_port *ports;
	size_t np, capp;
	struct ep_pair *pairs;
	size_t npairs, cappairs;
};

void ep_set_free(struct ep_set *s);
/* The index of a copy of a, or -1 on no memory. */
long ep_set_addr(struct ep_set *s, const struct ep_addr *a);
/* The index of p (added once), or -2 on no memory. */
long ep_set_port(struct ep_set *s, const struct sp_port *p);
int ep_set_pair(struct ep_set *s, long a, long p, bool ready);
/* Read an Endpoints object's subsets into s. */
int ep_set_parse(struct ep_set *s, const msgpack_object *subsets);
/* Pack the subsets array, grouped and sorted so that equal sets pack to
 * equal bytes, keeping at most max addresses (*truncated says whether
 * some were dropped: ready addresses are kept first). */
int ep_set_pack(const struct ep_set *s, msgpack_packer *pk, size_t max,
    bool *truncated);

#endif
