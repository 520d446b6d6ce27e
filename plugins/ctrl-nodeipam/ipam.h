/* plugins/ctrl-nodeipam/ipam.h — the node IPAM controller's state: the
 * cluster CIDR cut into node-sized blocks, a bitmap of the blocks in use and
 * which node holds which. */
#ifndef KUBUS_CTRL_NODEIPAM_H
#define KUBUS_CTRL_NODEIPAM_H

#include "ctrl.h"

struct ipam_cfg {
	struct ctrl_conf ctl;
	char *cluster_cidr;
	int64_t mask;
	int64_t full_retry_ms;
};

struct ipam_owner {
	char *node;
	uint32_t idx;
	struct ipam_owner *next;
};

/* IPv4 only: base address and prefix of the cluster CIDR, and 2^(mask -
 * prefix) blocks. */
struct ipam_range {
	uint32_t base;
	int prefix, mask;
	uint32_t nblocks;
	uint8_t *used; /* bitmap */
	uint32_t nused;
	uint32_t hint; /* where the next search starts */
};

struct ipam {
	struct ctrl c;
	struct ipam_cfg cfg;
	struct kb_informer *nodes;
	pthread_mutex_t mu; /* r and owners: handlers and workers */
	struct ipam_range r;
	struct ipam_owner *owners;
};

/* range.c: parse "a.b.c.d/p" into base and prefix (base masked); false
 * with a reason in why. */
bool ipam_parse_cidr(const char *s, uint32_t *base, int *prefix, char *why,
    size_t whylen);
int ipam_range_init(struct ipam_range *r, const char *cidr, int mask, char *why,
    size_t whylen);
void ipam_range_free(struct ipam_range *r);
/* The block index of a CIDR string of this range's block size; false when
 * it is not one of our blocks. */
bool ipam_block_of(const struct ipam_range *r, const char *cidr, size_t len,
    uint32_t *idx);
void ipam_block_cidr(const struct ipam_range *r, uint32_t idx, char *buf,
    size_t len);
bool ipam_take_free(struct ipam_range *r, uint32_t *idx);
void ipam_set(struct ipam_range *r, uint32_t idx, bool used);
bool ipam_is_set(const struct ipam_range *r, uint32_t idx);

/* sync.c: under mu. Record that node holds idx (false: idx is another
 * node's); forget node's block (freeing it). */
bool ipam_hold(struct ipam *p, const char *node, uint32_t idx);
void ipam_release(struct ipam *p, const char *node);
/* The block node holds, or false. */
bool ipam_held(struct ipam *p, const char *node, uint32_t *idx);
void ipam_owners_free(struct ipam *p);

/* Informer handlers' bookkeeping, and the reconcile (a ctrl_sync_fn). */
void ipam_observe(struct ipam *p, const msgpack_object *node);
void ipam_forget(struct ipam *p, const msgpack_object *node);
int ipam_sync(void *arg, const char *key);

#endif
