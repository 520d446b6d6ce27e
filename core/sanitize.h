/* core/sanitize.h — run-time defaults of AddressSanitizer, for programs
 * built with -fsanitize=address (KUBUS_SANITIZE). Include it in exactly one
 * file of each executable: the runtime asks the executable, not its
 * libraries, for these defaults. ASAN_OPTIONS in the environment still
 * overrides them.
 *
 * intercept_tls_get_addr=0: GCC 12's sanitizer runtime records a garbage
 * range for a dynamic TLS block that starts 16 bytes into a page, which
 * LeakSanitizer's exit scan then reads ("Tracer caught signal 11" after
 * every check passed; google/sanitizers#1322, fixed after GCC 13).
 * Plugins are dlopen-ed, so their libraries' thread-locals are dynamic TLS.
 * build.sh sets the same (sanitizer_env) in ASAN_OPTIONS; this covers ctest and a test
 * run by hand.
 */
#ifndef KUBUS_SANITIZE_H
#define KUBUS_SANITIZE_H

#ifdef __SANITIZE_ADDRESS__
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=1:intercept_tls_get_addr=0";
}
#endif

#endif
