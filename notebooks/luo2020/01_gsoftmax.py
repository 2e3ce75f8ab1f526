# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # G-softmax (placeholder for infrastructure testing)

# %% tags=["parameters"]
seed = 0
scale = "smoke"
output_dir = ""

# %%
import matplotlib.pyplot as plt
import numpy as np
print("seed", seed)
plt.plot(np.arange(10) ** 2)
plt.show()
