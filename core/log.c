/* core/log.c — one line per event, logfmt style, to stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

int kb_log_level = KB_LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug", "trace" };

int kb_log_level_parse(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Quote the message the logfmt way: backslash before quotes and
 * backslashes, newlines as \n. */
static void quote(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		if (*s == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
			continue;
		}
		out[n++] = *s;
	}
	out[n] = '\0';
}

void kb_log_line(int level, const char *plugin, const char *msg,
    const char *kv)
{
	if (level > kb_log_level)
		return;
	if (level < 0)
		level = 0;
	if (level > 4)
		level = 4;
	char q[1024], ts[40];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)tv.tv_usec / 1000);
	quote(q, sizeof(q), msg ? msg : "");
	/* One fprintf per line: stdio locks the stream, lines never interleave. */
	fprintf(stderr, "ts=%s level=%s plugin=%s msg=\"%s\"%s%s\n", ts,
	    names[level], plugin ? plugin : "kubus", q, kv ? " " : "",
	    kv ? kv : "");
}

void kb_clog(int level, const char *msg, const char *kvfmt, ...)
{
	if (level > kb_log_level)
		return;
	char kv[1024] = "";
	if (kvfmt) {
		va_list ap;
		va_start(ap, kvfmt);
		vsnprintf(kv, sizeof(kv), kvfmt, ap);
		va_end(ap);
	}
	kb_log_line(level, "kubus", msg, kv[0] ? kv : NULL);
}
