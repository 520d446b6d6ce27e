/* core/log.h — the host's structured, leveled log (stderr). */
#ifndef KUBUS_CORE_LOG_H
#define KUBUS_CORE_LOG_H

#include <kubus/host.h>

extern int kb_log_level; /* enum kb_log_level; messages above it are dropped */

/* `level=info plugin=NAME msg="…" kv…` on one line; thread-safe. */
void kb_log_line(int level, const char *plugin, const char *msg,
    const char *kv);
/* printf-style convenience for the core itself (plugin=kubus). */
void kb_clog(int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));
int kb_log_level_parse(const char *s);

#endif
