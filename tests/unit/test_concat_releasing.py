"""Joining a read's chunks without holding them twice: the same frame as pd.concat, by hand."""

import numpy as np
import pandas as pd

from crm_kpis.sources.reading import concat_releasing


def _chunk(ids, amounts, labels, when):
    return pd.DataFrame({"id": pd.Series(ids, dtype="int64"), "amount": pd.Series(amounts, dtype="float64"),
                         "label": pd.Series(labels, dtype=object),
                         "at": pd.Series(pd.to_datetime(when), dtype="datetime64[us]")})


def test_chunks_of_one_type_are_copied_in_and_dropped_one_by_one():
    chunks = [_chunk([1, 2], [1.5, np.nan], ["a", None], ["2026-10-01", "2026-10-02"]),
              _chunk([3], [3.25], ["b"], ["2026-10-03"])]
    expected = pd.concat([c.copy() for c in chunks], ignore_index=True)
    joined = concat_releasing(chunks)
    assert chunks == []  # every chunk let go
    assert list(joined.dtypes) == list(expected.dtypes) and joined["label"].dtype == object  # not inferred as str
    assert joined["id"].tolist() == [1, 2, 3] and joined["label"].tolist()[::2] == ["a", "b"]
    assert np.isnan(joined["amount"][1]) and joined["amount"][2] == 3.25 and joined["label"][1] is None
    assert joined["at"].tolist() == list(pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"]))
    assert joined.equals(expected) and list(joined.index) == [0, 1, 2]


def test_chunks_that_differ_in_type_are_widened_as_pandas_does():
    # an integer column with a NULL in the second chunk only arrives as floats there
    first = pd.DataFrame({"n": pd.Series([1, 2], dtype="int64")})
    second = pd.DataFrame({"n": pd.Series([np.nan, 4.0], dtype="float64")})
    joined = concat_releasing([first, second])
    assert joined["n"].dtype == "float64" and joined["n"].tolist()[::3] == [1.0, 4.0] and np.isnan(joined["n"][2])
    one = pd.DataFrame({"n": [7]})
    assert concat_releasing([one]) is one
