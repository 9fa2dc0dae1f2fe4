/*
 * log.h — operator logging: syslog, or stderr in the foreground (-d).
 * Errors meant for a client go back on the control socket, not here.
 */
#ifndef SWITCHD_LOG_H
#define SWITCHD_LOG_H
#include <stdarg.h>

void log_init(int foreground, int verbose);
void log_detached(void);
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));	/* appends strerror(errno) */
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
#endif
