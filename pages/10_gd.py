import streamlit as st
import dltl_ui as ui
ui.page_setup("Gradient descent")
st.title("Gradient descent")
url = ui.UrlState()
lr = st.slider("lr", 0.0001, 1.0, url.float("lr", 0.1, 0.0001, 1.0), key="lr")
url.sync(lr=lr)
url.report()
st.write(f"lr is {lr}")
