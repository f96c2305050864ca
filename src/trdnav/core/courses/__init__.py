"""Interventional courses (esketamine, ketamine, rTMS, ECT): schedule, session thresholds,
eligibility, outcomes. Pure: see :mod:`trdnav.core.courses.results` for the functions and results,
:mod:`trdnav.core.courses.model` for the course record."""
