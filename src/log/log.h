/*
 * log.h - leveled logging to stderr: one line per event,
 * "time level module: message key=value ...". The level can change at run
 * time. SIP messages are logged whole at debug by the transport.
 */
#ifndef PINHOLE_LOG_H
#define PINHOLE_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

extern enum log_level log_current_level;

void log_set_level(enum log_level level);
/* "error", "warning", "notice", "info", "debug"; 0 or EINVAL. */
int log_level_parse(const char *name, enum log_level *level);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool log_enabled(enum log_level level)
{
	return level <= log_current_level;
}

#define log_err(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARNING, mod, __VA_ARGS__)
#define log_notice(mod, ...) log_write(LOG_NOTICE, mod, __VA_ARGS__)
#define log_info(mod, ...) \
	do { if (log_enabled(LOG_INFO)) log_write(LOG_INFO, mod, __VA_ARGS__); } while (0)
#define log_debug(mod, ...) \
	do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__); } while (0)

#endif
