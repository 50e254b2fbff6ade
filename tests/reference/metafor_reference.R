# Reference values for curation.pool, computed with R's metafor.
#
# Regenerate from the repository root with:
#     Rscript tests/reference/metafor_reference.R
# It writes tests/reference/metafor_reference.json beside this script. Needs R with the packages
# metafor, lme4 and jsonlite (Debian: apt-get install r-cran-metafor r-cran-lme4 r-cran-jsonlite).
#
# Every fit uses metafor's defaults except the arguments named here (measure, method, test, level).
# Errors and warnings raised by metafor are recorded beside the values, so that the tests can check
# that curation.pool does the same thing (a NaN, a note) where metafor refuses or warns.

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------

prop_sets <- list(
  # metafor's dat.pritz1997: 14 studies, two of them at 100%
  pritz = list(xi = dat.pritz1997$xi, ni = dat.pritz1997$ni, groups = NULL),
  # one study at 0% and one at 100%
  zero_full = list(xi = c(0, 12, 30, 45, 20, 7), ni = c(25, 40, 60, 45, 33, 19), groups = NULL),
  # every study at 100%
  all100 = list(xi = c(10, 20, 15, 30), ni = c(10, 20, 15, 30), groups = NULL),
  # identical studies
  identical = list(xi = c(10, 10, 10, 10), ni = c(40, 40, 40, 40), groups = NULL),
  k1 = list(xi = c(12), ni = c(30), groups = NULL),
  k2 = list(xi = c(12, 40), ni = c(30, 50), groups = NULL),
  # PRRT-like disease-control counts (illustrative numbers shaped like published PRRT cohorts),
  # with a grade label per study; "mixed" is a subgroup with a single study
  prrt = list(
    xi = c(45, 88, 33, 120, 18, 60, 25, 70, 12, 39),
    ni = c(52, 101, 45, 149, 30, 68, 40, 85, 20, 44),
    groups = c("G1-2", "G1-2", "G3", "G1-2", "G3", "G1-2", "G3", "G1-2", "G3", "mixed"))
)

# median PFS (months) with standard errors from 95% CIs, and a label per study
gen_sets <- list(
  medians = list(
    yi = c(24.5, 28.0, 18.7, 32.1, 22.4, 26.0, 15.3, 29.5),
    sei = c(2.1, 3.4, 1.9, 4.4, 2.6, 3.0, 1.5, 5.2),
    groups = c("A", "A", "B", "A", "B", "A", "B", "A"))
)

measures <- c("PR", "PLN", "PLO", "PAS", "PFT")
methods <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

transf_for <- function(measure) {
  switch(measure,
         PR = NULL, GEN = NULL,
         PLN = exp,
         PLO = transf.ilogit,
         PAS = transf.iarcsin,
         PFT = transf.ipft.hm)
}

num <- function(x) {
  if (is.null(x)) return(NULL)
  as.numeric(x)
}

# vectors stay JSON arrays even when of length 1
vec <- function(x) {
  if (is.null(x)) return(NULL)
  I(as.numeric(x))
}

# run an expression, capturing the value, the warnings and an error
capture <- function(expr) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) e),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (inherits(val, "error")) {
    return(list(value = NULL, error = conditionMessage(val), warnings = I(warns)))
  }
  list(value = val, error = NULL, warnings = I(warns))
}

fit_model <- function(d, measure, method, hk, level) {
  if (measure == "GEN") {
    rma(yi = d$yi, sei = d$sei, method = method, test = if (hk) "knha" else "z", level = level)
  } else if (method == "GLMM") {
    rma.glmm(measure = "PLO", xi = d$xi, ni = d$ni, method = "ML", test = if (hk) "t" else "z",
             level = level)
  } else {
    rma(measure = measure, xi = d$xi, ni = d$ni, method = method,
        test = if (hk) "knha" else "z", level = level)
  }
}

pred_values <- function(res, measure, ni) {
  out <- list()
  p <- predict(res)
  out$pi_low_t <- num(p$pi.lb)
  out$pi_high_t <- num(p$pi.ub)
  tf <- transf_for(measure)
  if (is.null(tf)) {
    out$estimate <- num(p$pred); out$ci_low <- num(p$ci.lb); out$ci_high <- num(p$ci.ub)
    out$pi_low <- num(p$pi.lb); out$pi_high <- num(p$pi.ub)
  } else {
    pt <- if (measure == "PFT") predict(res, transf = tf, targs = list(ni = ni)) else predict(res, transf = tf)
    out$estimate <- num(pt$pred); out$ci_low <- num(pt$ci.lb); out$ci_high <- num(pt$ci.ub)
    out$pi_low <- num(pt$pi.lb); out$pi_high <- num(pt$pi.ub)
  }
  out
}

core_values <- function(res, measure, ni) {
  out <- list(
    k = res$k,
    est_t = num(res$beta), se_t = num(res$se),
    ci_low_t = num(res$ci.lb), ci_high_t = num(res$ci.ub),
    tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
    i2 = num(res$I2), h2 = num(res$H2))
  if (inherits(res, "rma.glmm")) {
    out$q_wald <- num(res$QE.Wld); out$q_lrt <- num(res$QE.LRT)
    out$q_pval_wald <- num(res$QEp.Wld); out$q_pval_lrt <- num(res$QEp.LRT)
  } else {
    out$q <- num(res$QE); out$q_pval <- num(res$QEp)
    out$yi <- vec(res$yi); out$vi <- vec(res$vi)
    w <- capture(weights(res))
    out$weights <- vec(w$value)
  }
  c(out, pred_values(res, measure, ni))
}

one_fit <- function(d, measure, method, hk, level = 95, subgroups = TRUE, loo = TRUE) {
  entry <- list(measure = measure, method = method, hk = hk, level = level)
  r <- capture(fit_model(d, measure, method, hk, level))
  entry$error <- r$error
  entry$warnings <- r$warnings
  if (is.null(r$value)) return(entry)
  res <- r$value
  ni <- d$ni
  v <- capture(core_values(res, measure, ni))
  entry$values_error <- v$error
  entry$values_warnings <- v$warnings
  entry <- c(entry, v$value)

  # Q-profile confidence intervals (confint's default for rma.uni)
  if (inherits(res, "rma.uni")) {
    ci <- capture(confint(res))
    entry$confint_error <- ci$error
    entry$confint_warnings <- ci$warnings
    if (!is.null(ci$value)) {
      rr <- ci$value$random
      entry$tau2_ci_low <- num(rr["tau^2", "ci.lb"]); entry$tau2_ci_high <- num(rr["tau^2", "ci.ub"])
      entry$i2_ci_low <- num(rr["I^2(%)", "ci.lb"]); entry$i2_ci_high <- num(rr["I^2(%)", "ci.ub"])
      entry$h2_ci_low <- num(rr["H^2", "ci.lb"]); entry$h2_ci_high <- num(rr["H^2", "ci.ub"])
    }
    # Egger's regression test
    eg <- capture(regtest(res, model = "lm", predictor = "sei"))
    entry$egger_error <- eg$error
    entry$egger_warnings <- eg$warnings
    if (!is.null(eg$value)) {
      entry$egger_z <- num(eg$value$zval); entry$egger_p <- num(eg$value$pval)
      entry$egger_intercept <- num(eg$value$est); entry$egger_df <- num(eg$value$dfs)
    }
  }

  # leave-one-out: refit without each study in turn (back-transformation with the remaining ni)
  k <- if (measure == "GEN") length(d$yi) else length(d$xi)
  if (loo && k >= 2) {
    entry$loo <- lapply(seq_len(k), function(i) {
      di <- if (measure == "GEN") list(yi = d$yi[-i], sei = d$sei[-i]) else list(xi = d$xi[-i], ni = d$ni[-i])
      ri <- capture(fit_model(di, measure, method, hk, level))
      if (is.null(ri$value)) return(list(error = ri$error))
      vi <- capture(core_values(ri$value, measure, di$ni))
      if (is.null(vi$value)) return(list(error = vi$error))
      keep <- c("est_t", "se_t", "ci_low_t", "ci_high_t", "tau2", "i2", "h2", "q",
                "estimate", "ci_low", "ci_high", "pi_low", "pi_high")
      vi$value[intersect(keep, names(vi$value))]
    })
  }

  # subgroups: each pooled on its own, then a common-effect Q across the subgroup estimates
  if (subgroups && !is.null(d$groups)) {
    labs <- unique(d$groups)
    sub <- list(); est <- c(); se <- c()
    for (g in labs) {
      idx <- which(d$groups == g)
      dg <- if (measure == "GEN") list(yi = d$yi[idx], sei = d$sei[idx]) else list(xi = d$xi[idx], ni = d$ni[idx])
      rg <- capture(fit_model(dg, measure, method, hk, level))
      sg <- list(label = g, error = rg$error, warnings = rg$warnings)
      if (!is.null(rg$value)) {
        vg <- capture(core_values(rg$value, measure, dg$ni))
        sg <- c(sg, vg$value)
        est <- c(est, c(rg$value$beta)); se <- c(se, rg$value$se)
      } else {
        est <- c(est, NA); se <- c(se, NA)
      }
      sub[[length(sub) + 1]] <- sg
    }
    entry$subgroups <- sub
    qb <- capture(rma(est, sei = se, method = "EE"))
    entry$between_error <- qb$error
    if (!is.null(qb$value)) {
      entry$q_between <- num(qb$value$QE)
      entry$df_between <- qb$value$k - 1
      entry$p_between <- num(qb$value$QEp)
    }
  }
  entry
}

fits <- list()
add <- function(name, entry) {
  entry$dataset <- name
  fits[[length(fits) + 1]] <<- entry
}

for (name in names(prop_sets)) {
  d <- prop_sets[[name]]
  for (measure in measures) {
    # the escalc values themselves
    for (method in methods) {
      for (hk in c(FALSE, TRUE)) {
        add(name, one_fit(d, measure, method, hk))
      }
    }
  }
  for (hk in c(FALSE, TRUE)) {
    add(name, one_fit(d, "PLO", "GLMM", hk))
  }
}

for (name in names(gen_sets)) {
  d <- gen_sets[[name]]
  for (method in methods) {
    for (hk in c(FALSE, TRUE)) {
      add(name, one_fit(d, "GEN", method, hk))
    }
  }
}

# other confidence levels
for (lev in c(90, 99)) {
  for (method in c("EE", "DL", "REML", "PM")) {
    for (hk in c(FALSE, TRUE)) {
      add("pritz", one_fit(prop_sets$pritz, "PLO", method, hk, level = lev, loo = FALSE))
      add("pritz", one_fit(prop_sets$pritz, "PFT", method, hk, level = lev, loo = FALSE))
    }
  }
}

datasets <- c(
  lapply(prop_sets, function(d) list(events = vec(d$xi), totals = vec(d$ni), groups = if (is.null(d$groups)) NULL else I(d$groups))),
  lapply(gen_sets, function(d) list(yi = vec(d$yi), sei = vec(d$sei), groups = I(d$groups))))

out <- list(
  generated_by = "tests/reference/metafor_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  datasets = datasets,
  fits = fits)

write_json(out, file.path(outdir, "metafor_reference.json"), auto_unbox = TRUE, digits = NA,
           null = "null", na = "null", pretty = FALSE)
cat("wrote", length(fits), "fits to", file.path(outdir, "metafor_reference.json"), "\n")
