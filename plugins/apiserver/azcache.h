/* plugins/apiserver/azcache.h — the authorizer's decisions, remembered
 * (authn.c asks the core's `auth` service only on a miss). The rules are
 * the host's config, fixed while it runs, so a decision for the same
 * question never changes; the cache only has to hold the questions asked
 * often. It is 8-way set associative: each question goes to one set of
 * eight places, so a few hundred principals' questions (a hundred
 * kubelets') find their places rather than evicting each other as a
 * direct-mapped table would. Bounded: a set full of other questions
 * gives up its oldest place. */
#ifndef KUBUS_APISERVER_AZCACHE_H
#define KUBUS_APISERVER_AZCACHE_H

#include <stdbool.h>
#include <stddef.h>

#define API_AZ_SETS 2048
#define API_AZ_WAYS 8

/* The decision remembered for key (its reason, "" when allowed, copied
 * into reason): false when there is none. */
bool api_az_lookup(const char *key, bool *allowed, char *reason, size_t rlen);
/* Remember a decision (nothing when out of memory). */
void api_az_store(const char *key, bool allowed, const char *reason);
/* How many decisions are held (at most API_AZ_SETS * API_AZ_WAYS). */
size_t api_az_count(void);

#endif
