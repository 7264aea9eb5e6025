/* version: jobq's version string; the Makefile passes it from git. */
#ifndef JOBQ_VERSION_H
#define JOBQ_VERSION_H

#ifndef JOBQ_VERSION
#define JOBQ_VERSION "0.1.0-dev"
#endif

#endif
